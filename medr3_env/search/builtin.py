"""The built-in search backends, registered in ``registry.backends`` exactly as a plug-in
package's entry points would be (imported lazily on the first backend lookup)."""

from __future__ import annotations

from medr3_env.plugins import registry
from medr3_env.search.remote_backend import RemoteSearcher
from medr3_env.search.tantivy_backend import TantivySearcher
from medr3_env.search.whoosh_backend import WhooshSearcher

registry.backends.register(
    "whoosh", WhooshSearcher, description="Whoosh BM25F index on disk (pure Python, the default)"
)
registry.backends.register(
    "tantivy", TantivySearcher, description="tantivy BM25 index on disk (fast; medr3-env[fast])"
)
registry.backends.register(
    "remote", RemoteSearcher, description="a `medr3 serve` server over HTTP (needs a URL)"
)
