from app.cli import gui_main

raise SystemExit(gui_main())
