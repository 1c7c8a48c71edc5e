"""Model zoo: Edge-TPU-friendly Keras designs (installed as ``edgekit.zoo``)."""
