def attach_clsact(): pass
def detach_clsact(): pass
