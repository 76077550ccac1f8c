"""Attached images: validated and normalised once on upload (`images`), stored as files with a
metadata row (`models`), served to their owner only, turned into provider-neutral parts for a
request (`selectors.image_part`)."""
