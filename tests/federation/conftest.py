"""Federation tests run a real embedded federation (`fed`) and an HTTP session (`http`)."""
from tests.running import fed, http, kill_leftovers  # noqa: F401  (fixtures; kill_leftovers is imported from here by tests/h2)
