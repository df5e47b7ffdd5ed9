from deblurkit.cli import main

raise SystemExit(main())
