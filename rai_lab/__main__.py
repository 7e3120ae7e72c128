"""`python -m rai_lab` is `rai-lab`."""

import sys

from rai_lab.cli import main

sys.exit(main())
