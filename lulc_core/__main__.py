from lulc_core.cli import main

raise SystemExit(main())
