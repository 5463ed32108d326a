import sys

from hydrorl.cli import main

sys.exit(main())
