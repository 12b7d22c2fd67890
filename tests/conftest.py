"""Suite-wide settings."""

import os

# CLI output goes through rich, which wraps at the terminal width; messages that carry long
# temporary paths would otherwise be split mid-phrase and depend on where pytest put tmp_path.
os.environ.setdefault("COLUMNS", "240")
