"""What a user's port meets: :func:`~crosscheck.porting.checking.check`,
:func:`~crosscheck.porting.locating.locate`, the capture of every layer's call, evaluation of each side
in its working dtype and in float64, and the two-tier verdicts. Needs JAX and PyTorch."""
