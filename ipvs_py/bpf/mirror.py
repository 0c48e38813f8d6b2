class SessionMirror: pass
