"""The batch-size probe: does a module's row depend on how many rows share its call?"""
