# stub custom builder script (never run)
