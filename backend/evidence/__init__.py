"""Evidence (证据): photos, audio, video and documents, stored unchanged and content-addressed."""
