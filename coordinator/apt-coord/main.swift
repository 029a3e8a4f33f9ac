print("apt-coord")
