import os
import sys

# Make `tests.oracle` importable as `oracle` regardless of how pytest is invoked.
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("NO_COLOR", "1")


# --- hypothesis: CI runs the same examples every time (HYPOTHESIS_PROFILE=ci, set by .ci/run), so a
# green run here is the run CI makes; elsewhere each run draws new examples.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


# --- rendering tests (test_terminal, test_dot, test_cli_render) -------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def gradviz_cache_dir(tmp_path_factory):
    """GRADVIZ_CACHE_DIR for the whole session: a temporary compiled-wasm cache, never the user's."""
    path = tmp_path_factory.mktemp("gradviz-render-cache")
    old = os.environ.get("GRADVIZ_CACHE_DIR")
    os.environ["GRADVIZ_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GRADVIZ_CACHE_DIR", None)
    else:
        os.environ["GRADVIZ_CACHE_DIR"] = old
