"""Federation tests run a real embedded federation (`fed`) and an HTTP session (`http`)."""
from tests.running import fed, http  # noqa: F401  (fixtures)
