"""Names the Lambdas, the stacks and the rehearsal agree on: a re-export of `contract.names`.

The strings live once, in contract/names.py (shipped at the root of the Lambda bundle); this module keeps
the import path the stacks and the functions already use.
"""

from __future__ import annotations

from contract.names import *  # noqa: F403
