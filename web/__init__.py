"""The faces: server-rendered pages for caseworkers, stewards and auditors.

An edge like ``api/``: routes parse the form, call an application service and render a
template. Every asset is served from ``web/static`` (nothing is fetched from another host).
"""
