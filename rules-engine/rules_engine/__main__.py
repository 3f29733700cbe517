from rules_engine.main import run

run()
