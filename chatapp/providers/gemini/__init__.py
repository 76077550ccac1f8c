"""The Gemini-native routes: Google's API (`google`) and Segmind (`segmind`), sharing one wire
format (`wire`) and one safety vocabulary (`safety`)."""
