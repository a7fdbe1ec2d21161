"""Array-in/array-out predictors: a trained network and its preprocessing applied to frames
or features already in memory. The stages (api/) read and write the files around them;
training's validation runs the same code on the model it trains."""
