"""What the console knows and computes, free of the web framework and of NATS: live series fed from the
events, rates, the gateway's status snapshot, open problems, export counters and error positions."""
