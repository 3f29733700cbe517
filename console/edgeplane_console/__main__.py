from edgeplane_console.main import run

run()
