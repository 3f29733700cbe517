from core_command.main import run

run()
