from core_metadata.main import run

run()
