"""postprod: a post-production pipeline for photo shoots."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Arrow's C++ default memory pool is chosen once, when pyarrow's library loads, from
# ARROW_DEFAULT_MEMORY_POOL, and the Parquet writer takes its pages from that pool whatever
# ``pyarrow.set_memory_pool`` says (:func:`pipeline.kernel.schema.use_system_memory_pool` covers
# the rest). pyarrow's bundled mimalloc keeps the pages of the driver's freed table batches
# resident: 10 MB more after the manifest on 1,000 images, 6 MB on 100 (RESULTS.md, target 5);
# glibc's malloc gives them back or reuses them. Set before any of postprod imports pyarrow; a
# process that loaded it first, or a user who chose a pool, keeps theirs.
if "pyarrow" not in _sys.modules:
    _os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
