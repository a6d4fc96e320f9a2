import os

print("loading data from", os.environ["SM_CHANNEL_TRAIN"])
raise ValueError("the data loader found 0 images (a seed-style bug)")
