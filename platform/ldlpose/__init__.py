"""ldlpose: Ray-distributed hyperparameter search for head-pose estimation by label distribution learning.

Importing the package is cheap: heavy dependencies (torch, ray, mlflow) load only in the modules
that use them, so the ``ldlpose`` command starts fast.
"""

__version__ = "0.1.0"

from ldlpose import _moved

_moved.install()  # old module paths resolve for saved search state (see ldlpose._moved)
