"""The web layer: URLs, thin views (permission, form, one service call, render), forms, the
settings panel, template tags and middleware. Nothing below imports it."""
