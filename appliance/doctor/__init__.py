"""``appliance doctor``: the checks an operator runs before and after installing.

Each check is one small function from the parsed config to an :class:`Outcome` (ok, warn
or fail, with the reason and the fix); :data:`appliance.cli.doctor.CHECKS` lists them
in the order they run. Checks reuse the loaders the server uses, so a passing doctor
means the server would load the same things, and they change nothing on disk: no key is
generated, no model is built, no running writer is asked to rotate its segment.
"""
