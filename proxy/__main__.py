import sys

from proxy.main import main

sys.exit(main())
