"""``python -m services.gateways <type>``: run the gateway of one medium type."""

import sys

from services.gateways.registry import MEDIA
from services.gateways.worker import run
from shared.config import Settings

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MEDIA:
        sys.exit(f"usage: python -m services.gateways {{{'|'.join(MEDIA)}}}")
    run(Settings.from_env(), sys.argv[1])
