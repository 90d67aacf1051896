from ldlpose.cli import main

raise SystemExit(main())
