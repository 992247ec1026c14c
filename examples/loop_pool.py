"""The original loop-based MaxPool2d layer, kept for comparison.

``updateOutput`` is the user's code from the question that started cpool,
reproduced as it was (float64 output whatever the input dtype, (row, col)
indices in ``self.index``, kernel == stride, no padding). ``updateGradInput``
is its counterpart written in the same style. It is correct, and it is the
reason an epoch took hours: four nested Python loops with several NumPy calls
per window.
"""

import numpy as np
from npnet import Module

__all__ = ["MaxPool2d"]


class MaxPool2d(Module):
    def __init__(self, kernel_size):
        super(MaxPool2d, self).__init__()
        self.kernel_size = kernel_size
        self.gradInput = None

    def updateOutput(self, input):
        kernel = self.kernel_size
        poolH = input.shape[2] // kernel
        poolW = input.shape[3] // kernel
        self.output = np.zeros((input.shape[0], input.shape[1], poolH, poolW))
        self.index = np.zeros((input.shape[0], input.shape[1], poolH, poolW, 2), dtype='int32')
        for i in range(input.shape[0]):
            for j in range(input.shape[1]):
                for k in range(0, input.shape[2] - kernel+1, kernel):
                    for m in range(0, input.shape[3] - kernel+1, kernel):
                        M = input[i, j, k : k+kernel, m : m+kernel]
                        self.output[i, j, k // kernel, m // kernel] = M.max()
                        self.index[i, j, k // kernel, m // kernel] = np.array(np.unravel_index(M.argmax(), M.shape)) + np.array((k, m))
        return self.output

    def updateGradInput(self, input, gradOutput):
        # Route each output's gradient to the input position that won its
        # window (recorded in self.index by updateOutput); everything else gets 0.
        self.gradInput = np.zeros_like(input)
        for i in range(gradOutput.shape[0]):
            for j in range(gradOutput.shape[1]):
                for k in range(gradOutput.shape[2]):
                    for m in range(gradOutput.shape[3]):
                        row, col = self.index[i, j, k, m]
                        self.gradInput[i, j, row, col] += gradOutput[i, j, k, m]
        return self.gradInput

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size}) [loop]"
