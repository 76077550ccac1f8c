"""Accounts: who may sign up, and the first one becoming the administrator."""
