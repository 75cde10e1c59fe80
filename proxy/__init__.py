"""The data plane: the outbound proxy and gateway of each cluster (see README, "Protocols")."""
import os as _os

from proxy.compiled import install as _install

# "mypyc" or "python", and why: which form of the request path this process runs (proxy/compiled.py)
FORM, FORM_WHY = _install(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
