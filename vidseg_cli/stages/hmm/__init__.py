"""HMM belief over per-pixel or per-frame class posteriors (3DFCN §3.5, Eq. (1)-(4)).

One hidden label sequence l_1..l_T per pixel (or per video for frame scores), one
transition matrix A[i, j] = P(l_t = j | l_{t-1} = i) and one initial distribution
pi = P(l_1) shared by all pixels, both counted from ground truth (`TransitionCounts`).
The network gives posteriors q_t(l) = P(l_t | z_t); the observation enters the HMM as the
likelihood P(z_t | l_t) ∝ q_t(l) / P(l_t), where the prior follows Eq. (4):

    p_1 = pi,   p_t(l) = sum_k A[k, l] p_{t-1}(k)                                  (4)

Forward (Eq. (2)) and backward (Eq. (3)) recursions, scaled (Rabiner's scaling):

    alpha_t = q_t / p_t * (A^T alpha_{t-1}) / c_t          alpha_t(l) = P(l_t | Z_t)   (2)
    beta_t  = A (q_{t+1} / p_{t+1} * beta_{t+1}) / c_{t+1}                             (3)
    gamma_t = alpha_t * beta_t = P(l_t | Z_T)                                           (1)

with c_t the normaliser of alpha_t; Eq. (3)'s P(l_t | Zbar_t) is p_t * beta_t up to a
constant, and Eq. (1)'s product divided by P(l_t) is alpha_t * beta_t. Because every
step is normalised, long videos neither underflow nor overflow; posteriors of exactly
zero are read as `min_prob` (a model's softmax never gives a true zero; float16 scores
round tiny ones to it), so no observation can rule out every path; states the HMM itself
makes impossible (a zero prior) get belief 0, not NaN.

`smooth.smooth` runs this over pixels in spatial tiles sized so that the working memory
stays under `max_memory` (pixels are independent, so tiling does not change the result;
`tiles.py` plans them), on one of two backends: on CPU a fused numba kernel (`kernel.py`:
one pass over a cache-resident block of pixels per step, and only the transition matrix's
entries above its row floors, exactly), and torch (`recursions.py`), vectorised over
pixels, on GPU, in log space, or on request. The output may be any array-like that takes
tile assignments (an h5py dataset), so that the belief is written as it is made.

Modules: `fit` (counting the HMM from labels), `recursions` (Eq. (4)'s priors, the check
of the posteriors and the torch recursions), `tiles` (the memory plan and tile I/O),
`kernel` (the numba recursions), `smooth` (the driver).
"""
