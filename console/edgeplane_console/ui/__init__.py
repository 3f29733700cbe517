"""NiceGUI pages. Each page builds its elements from ConsoleState and the gateway's REST APIs; an API's
error is shown in words (its EdgeX message), never as a stack trace."""
