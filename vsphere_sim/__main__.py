"""`python -m vsphere_sim` is `vsphere-sim`."""
import sys

from .cli import main

sys.exit(main())
