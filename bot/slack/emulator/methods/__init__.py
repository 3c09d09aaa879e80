"""The Web API methods the emulator answers, by family."""
