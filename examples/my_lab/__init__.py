"""An example of a lab's own code run by chaosgrid: a model (`nets`), datasets (`data`) and a training
loop that does not use chaosgrid's recipe (`train`). See docs/your-own-experiments.md."""
