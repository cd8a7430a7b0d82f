"""hostsim's settings screen: every registered credential editor as a local web page.

``hostsim ui`` serves it on 127.0.0.1 (``server``); ``app`` routes requests, ``security`` guards
them, ``editors`` turns an EditorSpec into a form and runs its commands, ``jobs`` runs the
long ones in the background, ``context`` is the HostContext they see and ``files`` carries the
uploads and downloads of PATH parameters. Nothing here knows any plugin's fields.
"""
