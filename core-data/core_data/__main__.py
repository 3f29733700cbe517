from core_data.main import run

run()
