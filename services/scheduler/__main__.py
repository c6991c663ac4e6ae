from services.scheduler.worker import run
from shared.config import Settings

if __name__ == "__main__":
    run(Settings.from_env())
