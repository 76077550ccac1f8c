"""Export and import of conversations.

Export (`export.py`, reading through `selectors.py`): one conversation as Markdown (the branch
shown) or as this app's JSON in a zip with its images (the whole tree), or every conversation
of a person in one zip, streamed in bounded memory. Import (`services.py`): a file is read
within the limits of `CHAT_LIMITS` (`archive.py`), each format's reader (`readers/`) turns it
into neutral conversations (`neutral.py`), and one transaction writes them, with a report of
whatever could not be carried.

Only `web` imports this domain; it imports `conversations`, `attachments` and those below.
"""
