from app_services.main import run

run()
