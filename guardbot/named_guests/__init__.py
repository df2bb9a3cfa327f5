"""Named guests (PWLU, passwordless users): registration, password reminders, the claim page.

Kept import-free: config.py reads the template placeholders from here, and the service
(service.py) needs config, so importing the service here would be circular.
"""
