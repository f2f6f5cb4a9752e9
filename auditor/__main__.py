"""`python -m auditor` is the same as the `backscatter-audit` console script."""

import sys

from auditor.cli import main

sys.exit(main())
