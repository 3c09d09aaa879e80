"""The sandbox workspace: the Slack emulator shown as a chat client in the browser."""
