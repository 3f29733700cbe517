from device_modbus.main import run

run()
