"""Recovery: on the in-process engine a damaged latest checkpoint is passed over for the one before
it, as on Ray Train; on both engines a failure that repeats identically is not retried forever."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import tiny_run

from ldlpose.errors import LdlposeError
from ldlpose.train.checkpoints import CHECKPOINT_FILE, checkpoint_dir_name, load_checkpoint
from ldlpose.train.failures import FAILURES_FILE, SAME_FAILURE_CAP
from ldlpose.train.run import fit

pytestmark = pytest.mark.slow

IN_PROCESS = {"workers": 1, "engine": "in_process"}


def test_a_truncated_latest_checkpoint_resumes_from_the_one_before(synth_root, tmp_path, capsys):
    run = tiny_run(synth_root, train__epochs=2, data__max_train_samples=32, resources=IN_PROCESS)
    with pytest.raises(LdlposeError, match="injected failure after epoch 1"):
        fit(run, storage_path=str(tmp_path), name="t", fail_after_epoch=1)
    first, second = (tmp_path / "t" / checkpoint_dir_name(e) for e in (1, 2))
    shutil.copytree(first, tmp_path / "first")
    fit(run, storage_path=str(tmp_path), name="t")  # epoch 2; pruning may drop epoch 1, the lower score
    if not first.exists():
        shutil.copytree(tmp_path / "first", first)
    model = second / CHECKPOINT_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # cut off, metrics.json intact
    with pytest.raises(LdlposeError):
        load_checkpoint(second)

    resumed = fit(run, storage_path=str(tmp_path), name="t")  # train.max_failures: 0, so no retry hides it
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[-1]["resumed_from_epoch"] == 1  # epoch 2 trained again from epoch 1's checkpoint
    assert load_checkpoint(second)["epoch"] == 1  # and its checkpoint is whole again (0-based epoch)
    assert "checkpoint of epoch 2 does not load" in capsys.readouterr().err


def _damaged(synth_root, tmp_path):
    """A copy of the tiny data with one training shard damaged: every attempt's shard check refuses
    it with the same words, before the first epoch."""
    bad = tmp_path / "data"
    shutil.copytree(synth_root / "synthhead", bad / "synthhead")
    with open(next((bad / "synthhead" / "train").glob("part-*.parquet")), "ab") as shard:
        shard.write(b"damaged")
    return bad


def test_the_same_failure_is_not_retried_forever(synth_root, tmp_path):
    run = tiny_run(_damaged(synth_root, tmp_path), train__max_failures=-1, resources=IN_PROCESS)
    with pytest.raises(LdlposeError, match=f"{SAME_FAILURE_CAP} times in a row with the same error") as err:
        fit(run, storage_path=str(tmp_path), name="loop")
    assert "do not match their sha256" in str(err.value)


def test_the_same_failure_is_not_retried_forever_on_ray_train(synth_root, ray_local, tmp_path):
    """Ray Train's ``FailureConfig(max_failures=-1)`` alone restarts the worker group without limit:
    its controller records each failed attempt in the run folder, the attempt after the cap returns
    without training, and the run fails naming the cap and the error."""
    import ray.train

    class Guard(ray.train.UserCallback):
        """Without the cap this run would never end: fail it after a few more attempts instead."""

        attempts = 0

        def after_exception(self, run_context, worker_exceptions):
            self.attempts += 1
            if self.attempts > SAME_FAILURE_CAP + 2:
                raise RuntimeError("no cap: the worker group was started again and again")

    run = tiny_run(_damaged(synth_root, tmp_path), train__max_failures=-1,
                   resources={"workers": 1, "engine": "ray_train"})
    with pytest.raises(LdlposeError, match=f"{SAME_FAILURE_CAP} times in a row with the same error") as err:
        fit(run, storage_path=str(tmp_path), name="loop", callbacks=[Guard()])
    assert "do not match their sha256" in str(err.value)
    attempts = json.loads((tmp_path / "loop" / FAILURES_FILE).read_text())
    assert len(attempts) == SAME_FAILURE_CAP  # the attempt after them trained nothing, and failed nothing
    assert not list((tmp_path / "loop").glob("checkpoint_epoch_*"))

    # A search restarts a failed trial by calling fit again (retry=False): it fails at once, no trainer
    # started. `ldlpose train` run again by hand (retry=True) starts a fresh record: 3 new tries.
    with pytest.raises(LdlposeError, match="times in a row"):
        fit(run, storage_path=str(tmp_path), name="loop", retry=False)
    assert len(json.loads((tmp_path / "loop" / FAILURES_FILE).read_text())) == SAME_FAILURE_CAP
