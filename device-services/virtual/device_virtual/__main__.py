from device_virtual.main import run

run()
