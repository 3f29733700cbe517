from device_opcua.main import run

run()
